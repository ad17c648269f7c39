/* Person names: a given name from an embedded list followed by surnames, or an honorific
 * followed by a capitalised name. */
#include <stdlib.h>
#include <string.h>

#include "gateway/pii.h"

/* Common given names of several languages, sorted by byte value (for bsearch). Compiled for
 * this project; names shorter than three bytes are left out (too many false positives). */
const char *const pii__given_names[] = {
    "Aarav", "Aaron", "Abdul", "Abdullah", "Abigail", "Adam", "Adebayo", "Aditi", "Aditya",
    "Adrian", "Adrián", "Afonso", "Agnes", "Agnieszka", "Agnès", "Agustina", "Ahmad", "Ahmed",
    "Ahmet", "Aidan", "Ailsa", "Ainhoa", "Aino", "Aisha", "Akiko", "Akira", "Akosua", "Alain",
    "Alan", "Alba", "Albert", "Alberto", "Aldo", "Alejandra", "Alejandro", "Aleksandra",
    "Alessandro", "Alessia", "Alexander", "Alexandre", "Alexandru", "Alexei", "Alexey",
    "Alexis", "Alfie", "Ali", "Alice", "Alma", "Alvaro", "Ama", "Amanda", "Amara", "Amber",
    "Amelia", "Amelie", "Amina", "Amit", "Amy", "Amélie", "Ana", "Anais", "Ananya", "Anastasia",
    "Anaïs", "Anders", "Andrea", "Andreas", "Andrei", "Andres", "Andrew", "Andrey", "Andriy",
    "Andrzej", "Andrés", "Angel", "Angela", "Angelika", "Angelo", "Anil", "Anita", "Anja",
    "Anjali", "Ann", "Anna", "Anne", "Annemarie", "Annika", "Anouk", "Anthony", "Antoine",
    "Anton", "Antonella", "Antonia", "Antonio", "Antti", "Aoi", "Aoife", "April", "Archie",
    "Arianna", "Arjen", "Arjun", "Arthur", "Arun", "Asha", "Ashley", "Ashok", "Astrid",
    "Attila", "August", "Aurelie", "Aurora", "Aurélie", "Austin", "Ava", "Axel", "Ayodele",
    "Ayse", "Ayşe", "Babajide", "Baptiste", "Barbara", "Bartosz", "Bas", "Beata", "Beatrice",
    "Beatriz", "Begona", "Begoña", "Ben", "Benedetta", "Benjamin", "Benoit", "Benoît",
    "Bernard", "Bernd", "Bethany", "Betty", "Beverly", "Bianca", "Bilal", "Bill", "Billy",
    "Birgit", "Birgitta", "Bjorn", "Björn", "Bob", "Bobby", "Bogdan", "Bohdan", "Boris", "Bram",
    "Brandon", "Brenda", "Brian", "Bridget", "Brigitte", "Brittany", "Bruce", "Bruna", "Bruno",
    "Bryan", "Burak", "Busra", "Büşra", "Caio", "Caitlin", "Caleb", "Callum", "Camila",
    "Camilla", "Camille", "Can", "Carl", "Carlo", "Carlos", "Carmela", "Carmen", "Carol",
    "Carolina", "Carolyn", "Catarina", "Caterina", "Catherine", "Cedric", "Celine", "Cem",
    "Charles", "Charlie", "Charlotte", "Chen", "Cheryl", "Chiara", "Chinedu", "Chioma", "Chloe",
    "Chloé", "Christian", "Christina", "Christine", "Christophe", "Christopher", "Chukwuemeka",
    "Ciara", "Ciaran", "Clara", "Claude", "Claudia", "Claudio", "Clement", "Clément", "Colette",
    "Colin", "Conceição", "Concepción", "Concetta", "Connor", "Conor", "Consuelo", "Cornelis",
    "Cristina", "Cynthia", "Cédric", "Céline", "Daan", "Dagmar", "Daiki", "Daniel", "Daniela",
    "Danielle", "Dariusz", "David", "Davide", "Dawn", "Dean", "Deborah", "Debra", "Declan",
    "Deepa", "Deepak", "Delphine", "Denis", "Denise", "Deniz", "Dennis", "Diana", "Diane",
    "Didier", "Diego", "Dieter", "Dimitris", "Dina", "Diogo", "Dirk", "Divya", "Dmitri",
    "Dmitry", "Dolores", "Domenico", "Dominik", "Don", "Donald", "Donna", "Doris", "Dorota",
    "Dorothy", "Douglas", "Dragan", "Duarte", "Dylan", "Ebba", "Ebru", "Eduardo", "Edward",
    "Eero", "Eileen", "Ekaterina", "Elena", "Eleni", "Elias", "Elif", "Elijah", "Elin", "Elisa",
    "Elise", "Eliska", "Elizabeth", "Eliška", "Elke", "Ella", "Ellie", "Elsa", "Emanuele",
    "Emeka", "Emil", "Emile", "Emilia", "Emilio", "Emily", "Emine", "Emma", "Emre", "Enrico",
    "Enrique", "Enzo", "Eric", "Erik", "Erzsebet", "Erzsébet", "Esperanza", "Esther", "Eszter",
    "Ethan", "Etienne", "Ettore", "Eugene", "Eun", "Eva", "Evan", "Eve", "Evelyn", "Evie",
    "Ewa", "Fabian", "Fabio", "Fabrice", "Fabrizio", "Faith", "Fang", "Fatima", "Fatma",
    "Federica", "Federico", "Felipe", "Felix", "Femke", "Ferenc", "Fernanda", "Fernando",
    "Filip", "Filippo", "Finn", "Fiona", "Fleur", "Florencia", "Florian", "Florin", "Floris",
    "Folake", "Frances", "Francesca", "Francesco", "Francisco", "Franco", "Francois",
    "Francoise", "Frank", "Franziska", "François", "Françoise", "Freddie", "Frederic",
    "Fredrik", "Freja", "Freya", "Frida", "Frieda", "Frédéric", "Funmilayo", "Fábio", "Gabor",
    "Gabriel", "Gabriela", "Gabriele", "Gael", "Gaelle", "Galina", "Gary", "Gaël", "Gaëlle",
    "Geert", "Genevieve", "Geneviève", "George", "Georgiou", "Gerald", "Gerard", "Gerhard",
    "Gerrit", "Giacomo", "Gianluca", "Gianni", "Gijs", "Gilles", "Ginette", "Ginevra",
    "Giorgia", "Giorgio", "Giorgos", "Giovanna", "Giovanni", "Gisela", "Giulia", "Giuseppe",
    "Giuseppina", "Gloria", "Goncalo", "Gonzalo", "Gonçalo", "Grace", "Graham", "Gregory",
    "Greta", "Grzegorz", "Guadalupe", "Gudrun", "Guillaume", "Guillermo", "Gunter", "Gustav",
    "Gustavo", "Guy", "Gábor", "Gérard", "Günter", "Hamza", "Hana", "Hanna", "Hannah", "Hanne",
    "Hanneke", "Hans", "Hao", "Harold", "Harper", "Harry", "Haruka", "Haruto", "Hasan",
    "Hassan", "Hatice", "Heather", "Hector", "Heike", "Heiko", "Heinz", "Heitor", "Helen",
    "Helene", "Helga", "Helle", "Helmut", "Hendrik", "Henri", "Henrik", "Henry", "Hildegard",
    "Hina", "Hiroshi", "Holger", "Holly", "Hope", "Horst", "Huda", "Hugo", "Hui", "Hunter",
    "Huseyin", "Hussein", "Hye", "Hyun", "Héctor", "Hélène", "Hüseyin", "Ian", "Ibrahim", "Ida",
    "Ignacio", "Igor", "Iker", "Ilaria", "Ildiko", "Ildikó", "Imogen", "Ines", "Ingeborg",
    "Ingrid", "Inmaculada", "Inès", "Inês", "Ioana", "Ion", "Irene", "Irina", "Iris", "Irmgard",
    "Isaac", "Isabel", "Isabella", "Isabelle", "Ishaan", "Isla", "Ismail", "Istvan", "István",
    "Itziar", "Ivan", "Ivana", "Ivy", "Iván", "Jack", "Jacob", "Jacobus", "Jacqueline",
    "Jacques", "Jade", "Jae", "Jake", "Jakob", "Jakub", "James", "Jamie", "Jan", "Jana",
    "Janet", "Janice", "Janusz", "Jaroslav", "Jason", "Javier", "Jean", "Jeffrey", "Jelena",
    "Jennifer", "Jens", "Jeremy", "Jeroen", "Jerome", "Jerry", "Jerzy", "Jesper", "Jesse",
    "Jessica", "Jessie", "Jesus", "Jesús", "Jie", "Jimena", "Jin", "Jing", "Jiri", "Jiří",
    "Joan", "Joana", "Joanna", "Joao", "Joaquin", "Joaquín", "Joe", "Johan", "Johanna",
    "Johannes", "John", "Johnny", "Jonas", "Jonathan", "Joon", "Joost", "Jordan", "Jorg",
    "Jorge", "Jose", "Josef", "Josefa", "Joseph", "Joshua", "Josiane", "José", "Joy", "Joyce",
    "João", "Juan", "Judith", "Judy", "Juha", "Jukka", "Jules", "Julia", "Julian", "Juliana",
    "Julie", "Julien", "Juliette", "Julio", "Jun", "June", "Jurgen", "Justin", "Justyna",
    "Jérôme", "Jörg", "Jürgen", "Kai", "Kaito", "Kamau", "Kamil", "Karan", "Karen", "Kari",
    "Karim", "Karin", "Karl", "Karolina", "Kasper", "Katalin", "Katarzyna", "Katerina",
    "Katharina", "Katherine", "Kathleen", "Kathryn", "Katrin", "Kavita", "Kavya", "Kayla",
    "Kazimierz", "Keiko", "Keith", "Kelly", "Kemal", "Kenji", "Kenneth", "Kerstin", "Kevin",
    "Khalid", "Kimberly", "Kiran", "Kirsty", "Klaus", "Knut", "Koen", "Kofi", "Kojo",
    "Konstantinos", "Kristin", "Krzysztof", "Kwame", "Kyle", "Kyung", "Laila", "Lakshmi",
    "Larissa", "Larry", "Lars", "Laszlo", "Laura", "Lauren", "Laurent", "Lawrence", "Layla",
    "Lea", "Leandro", "Lei", "Leila", "Lena", "Leo", "Leon", "Leonardo", "Leonie", "Leonor",
    "Lerato", "Leticia", "Letícia", "Lewis", "Liam", "Lieke", "Lieselotte", "Lily", "Lin",
    "Linda", "Linnea", "Lisa", "Liv", "Logan", "Loic", "Lorena", "Lorenza", "Lorenzo", "Lori",
    "Lotte", "Louis", "Louise", "Loïc", "Lucas", "Lucia", "Luciano", "Lucie", "Lucien", "Lucy",
    "Lucía", "Ludmila", "Ludovica", "Luigi", "Luis", "Luise", "Luiza", "Luka", "Lukas",
    "Lukasz", "Luke", "Luuk", "Luís", "Luíza", "László", "Léa", "Maarten", "Maciej", "Madison",
    "Mads", "Mael", "Magdalena", "Magnus", "Mahesh", "Mahmoud", "Maja", "Malgorzata", "Malin",
    "Manfred", "Manoj", "Manon", "Manuel", "Marcel", "Marcin", "Marco", "Marcos", "Marek",
    "Margaret", "Margareta", "Margarida", "Margaux", "Margherita", "Maria", "Mariam", "Mariana",
    "Marie", "Marieke", "Marilyn", "Mario", "Mark", "Marko", "Markus", "Marloes", "Marta",
    "Martha", "Martin", "Martina", "Martine", "Martín", "Mary", "Maryam", "Mason", "Massimo",
    "Mateo", "Mateusz", "Mathieu", "Mathilda", "Mathilde", "Matilde", "Mats", "Matteo",
    "Matthew", "Matthias", "Matti", "Maud", "Maurizio", "Max", "Maxime", "Maximilian", "May",
    "Maël", "Małgorzata", "Meera", "Megan", "Mehmet", "Melissa", "Mercedes", "Merve", "Mette",
    "Mia", "Michael", "Michal", "Michał", "Michel", "Michele", "Michelle", "Miguel", "Mihai",
    "Mikael", "Mikhail", "Mikkel", "Mikko", "Milan", "Milica", "Min", "Ming", "Minna",
    "Mireille", "Miroslav", "Misaki", "Mohamed", "Mohammed", "Moira", "Molly", "Monika",
    "Monique", "Montserrat", "Morag", "Moritz", "Morten", "Muhammad", "Murat", "Murilo",
    "Mustafa", "Mykola", "Nabil", "Nadezhda", "Nadia", "Nadine", "Naledi", "Nancy", "Naoki",
    "Naomi", "Natalia", "Natalie", "Nathalie", "Nathan", "Neha", "Nerea", "Ngozi", "Niall",
    "Niamh", "Nicholas", "Nicola", "Nicolas", "Nicole", "Niels", "Nikhil", "Niklas", "Nikola",
    "Nikolai", "Nikos", "Nils", "Nina", "Nisha", "Njeri", "Noah", "Noelia", "Noemi", "Nomvula",
    "Noor", "Nour", "Nuno", "Nuria", "Oceane", "Océane", "Odile", "Oksana", "Olaf", "Ole",
    "Oleg", "Olga", "Oliver", "Olivia", "Olivier", "Olof", "Olumide", "Oluwaseun", "Omar",
    "Omer", "Ondrej", "Ondřej", "Oscar", "Oskar", "Osman", "Otieno", "Owen", "Ozlem", "Pablo",
    "Paivi", "Pamela", "Paola", "Paolo", "Pascal", "Patrice", "Patricia", "Patrick", "Paul",
    "Paula", "Pauline", "Paulo", "Pavel", "Pawel", "Paweł", "Pedro", "Pekka", "Per", "Pernille",
    "Peter", "Petr", "Petra", "Philip", "Philipp", "Philippe", "Phoebe", "Pierre", "Pieter",
    "Pietro", "Pilar", "Piotr", "Pooja", "Poppy", "Pradeep", "Priya", "Päivi", "Péter",
    "Quentin", "Rachel", "Rafael", "Rafaela", "Rafal", "Rafał", "Raffaele", "Ragnhild", "Rahul",
    "Raj", "Rajesh", "Ralf", "Ralph", "Ramesh", "Rami", "Ramon", "Ramón", "Randy", "Rania",
    "Raphael", "Raphaël", "Raquel", "Rasmus", "Raul", "Ravi", "Ray", "Raymond", "Raúl",
    "Rebecca", "Reka", "Rekha", "Ren", "Renata", "Renate", "Rene", "René", "Rhys", "Ricardo",
    "Riccardo", "Richard", "Riikka", "Rita", "Riya", "Robert", "Roberta", "Roberto", "Rocio",
    "Rocío", "Rodrigo", "Roger", "Rohan", "Rolf", "Romain", "Ronald", "Roos", "Rosa", "Rose",
    "Roy", "Ruben", "Ruby", "Rubén", "Rui", "Russell", "Ruth", "Ryan", "Ryszard", "Réka",
    "Saanvi", "Sabine", "Saga", "Sakura", "Salma", "Salvador", "Salvatore", "Samantha", "Samir",
    "Samira", "Samuel", "Sander", "Sandra", "Sandrine", "Sanjay", "Sanna", "Sanne", "Santiago",
    "Saoirse", "Sara", "Sarah", "Satoshi", "Satu", "Scott", "Seamus", "Sean", "Sebastian",
    "Sebastien", "Selin", "Sem", "Seo", "Serena", "Sergei", "Sergey", "Sergio", "Sharon",
    "Shirley", "Shona", "Shreya", "Signe", "Sigrid", "Silke", "Silvia", "Simon", "Simona",
    "Simone", "Siobhan", "Sipho", "Sneha", "Sofia", "Sofía", "Solene", "Solveig", "Solène",
    "Sonia", "Soo", "Sophia", "Sophie", "Soren", "Sota", "Stanislaw", "Stanisław", "Stefan",
    "Stefanie", "Stefano", "Stephanie", "Stephen", "Steven", "Stijn", "Stéphanie", "Sue",
    "Sung", "Sunil", "Sunita", "Suresh", "Susan", "Susanne", "Sven", "Svetlana", "Swati",
    "Sylvain", "Sylvie", "Szymon", "Sébastien", "Sérgio", "Sónia", "Sølvi", "Søren", "Tadeusz",
    "Takashi", "Tamas", "Tamás", "Tao", "Taras", "Tariq", "Tatiana", "Teresa", "Tereza",
    "Terry", "Tetiana", "Thabo", "Themba", "Theo", "Theresa", "Thiago", "Thierry", "Thijs",
    "Thomas", "Théo", "Tiago", "Tiina", "Tijn", "Tim", "Timo", "Timothy", "Tobias", "Toby",
    "Tomas", "Tomasz", "Tommaso", "Tomoko", "Tomáš", "Tor", "Torsten", "Tunde", "Tuomas",
    "Tyler", "Umberto", "Unai", "Ursula", "Uta", "Ute", "Uwe", "Vaclav", "Valentin",
    "Valentina", "Valerie", "Valérie", "Vasilis", "Veronica", "Veronika", "Verónica", "Vicente",
    "Victor", "Victoria", "Vijay", "Vikram", "Viktor", "Ville", "Vincent", "Vincenzo",
    "Vinicius", "Vinícius", "Virginia", "Vitor", "Vittoria", "Vivaan", "Vladimir", "Vojtech",
    "Vojtěch", "Volker", "Václav", "Víctor", "Vítor", "Walid", "Walter", "Waltraud", "Wanjiru",
    "Wayne", "Wei", "Werner", "Weronika", "Wilhelmina", "Will", "Willem", "William", "Willie",
    "Wilma", "Wojciech", "Wolfgang", "Wouter", "Xiao", "Ximena", "Xin", "Yan", "Yannick",
    "Yannis", "Yasemin", "Yasmin", "Yasmine", "Yekaterina", "Ying", "Yoko", "Yolanda", "Yong",
    "Young", "Yousef", "Youssef", "Yui", "Yuki", "Yulia", "Yuri", "Yusuf", "Yuto", "Yves",
    "Zachary", "Zainab", "Zawadi", "Zbigniew", "Zdenek", "Zdeněk", "Zeynep", "Zhang", "Zoe",
    "Zofia", "Zoltan", "Zoltán", "Zsolt", "Zsuzsanna", "Zuzana", "Álvaro", "Ángel", "Ángela",
    "Élise", "Émile", "Étienne", "Óscar", "Ömer", "Özlem", "İbrahim", "Łukasz",
};
const size_t pii__given_names_count = sizeof(pii__given_names) / sizeof(pii__given_names[0]);

static const char *const ambiguous_names[] = {
    "Ali", "Ama", "Amber", "Ana", "Angel", "April", "Asha", "August", "Ben", "Bill", "Bob",
    "Can", "Carol", "Cem", "Chen", "Dawn", "Dean", "Deniz", "Don", "Eun", "Eva", "Eve", "Faith",
    "Fang", "Frank", "Grace", "Guy", "Holly", "Hope", "Hugo", "Hui", "Hunter", "Hye", "Hyun",
    "Ida", "Ion", "Iris", "Ivy", "Jack", "Jae", "Jan", "Jean", "Jin", "Jing", "Joon", "Joy",
    "Jun", "June", "Kai", "Kiran", "Lars", "Lea", "Lei", "Lily", "Lin", "Liv", "Mark", "Max",
    "May", "Min", "Ming", "Nina", "Noor", "Per", "Ray", "Ren", "Rita", "Rosa", "Rose", "Ruby",
    "Seo", "Soo", "Sue", "Sung", "Tao", "Tor", "Victor", "Wei", "Will", "Xin", "Yan", "Ying",
    "Young", "Zhang",
};

/* Capitalised words that follow a given name without being a surname. */
static const char *const not_surnames[] = {
    "About", "Academy", "After", "Airport", "All", "Also", "Am", "An", "And", "Any", "Are",
    "As", "At", "Avenue", "Award", "Bank", "Bay", "Be", "Because", "Been", "Before", "Boulevard",
    "Bridge", "But", "By", "Can", "Cathedral", "Center", "Centre", "Chapel", "Church", "City",
    "Close", "Club", "College", "Company", "Corp", "Could", "County", "Court", "Cup", "Day",
    "Dear", "Did", "Do", "Does", "Drive", "Each", "Even", "Every", "For", "Foundation", "Friday",
    "From", "Gardens", "Go", "Group", "Had", "Hall", "Has", "Have", "He", "Hello", "Her", "Here",
    "Hi", "His", "Hospital", "Hotel", "House", "How", "If", "In", "Inc", "Institute", "Is",
    "Island", "It", "Its", "January", "February", "March", "July", "September", "October",
    "November", "December", "Just", "Lake", "Lane", "League", "Library", "Ltd", "Monday",
    "Mountain", "Museum", "My", "No", "Not", "Now", "Of", "On", "Only", "Or", "Our", "Park",
    "Place", "Please", "Prize", "Project", "River", "Road", "Said", "Saturday", "Says", "School",
    "She", "Should", "So", "Square", "Stadium", "Station", "Still", "Street", "Sunday", "Team",
    "Than", "Thank", "Thanks", "That", "The", "Theater", "Theatre", "Their", "Them", "Then",
    "There", "These", "They", "This", "Those", "Thursday", "To", "Too", "Tower", "Tuesday",
    "University", "Up", "Very", "Was", "Way", "We", "Wednesday", "Were", "What", "When",
    "Where", "Which", "While", "Who", "Why", "With", "Would", "Yes", "You", "Your",
    /* places, languages, organisations and document words often capitalised mid-sentence */
    "Africa", "America", "American", "Amazon", "Apple", "Arabic", "Asia", "Australia",
    "Austria", "Berlin", "Brazil", "Britain", "British", "Canada", "Chapter", "China",
    "Chinese", "Christmas", "Dutch", "East", "Easter", "Edition", "England", "English",
    "Europe", "European", "Figure", "France", "French", "General", "German", "Germany",
    "Google", "Great", "Greek", "India", "Indian", "International", "Ireland", "Italian",
    "Italy", "Japan", "Japanese", "Java", "Kingdom", "Latin", "Linux", "London", "Madrid",
    "Microsoft", "Minister", "National", "New", "North", "Old", "Page", "Paris", "Part",
    "Poland", "Polish", "Portugal", "Portuguese", "President", "Python", "Republic", "Rome",
    "Royal", "Russia", "Russian", "Section", "South", "Spain", "Spanish", "State", "States",
    "Sweden", "Swedish", "Switzerland", "Table", "Turkey", "Turkish", "Union", "United",
    "Volume", "War", "West", "Windows", "World", "York",
};

/* Lowercase particles inside surnames ("Ludwig van Beethoven", "Maria de la Cruz"). */
static const char *const particles[] = {"al",  "bin", "da",  "das", "de", "del", "della",
                                        "den", "der", "di",  "dos", "du", "el",  "la",
                                        "le",  "ten", "ter", "van", "von", "zu"};

/* Honorifics; a trailing '.' is optional except for the single letter "M". */
static const char *const honorifics[] = {"Dott", "Dr",   "Frau", "Herr", "Mlle", "Mme",
                                         "Mr",   "Mrs",  "Ms",   "Mx",   "Prof", "Sig",
                                         "Sr",   "Sra",  "Srta", "Dra",  "Ing"};

#define WORD_MAX 40

static bool is_lower_a(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper_a(unsigned char c) { return c >= 'A' && c <= 'Z'; }

/* Bytes of a UTF-8 uppercase Latin letter at t[i] (Latin-1 and Latin Extended-A), or 0. */
static size_t utf8_upper(const char *t, size_t len, size_t i)
{
    if (i + 1 >= len)
        return 0;
    unsigned char a = (unsigned char)t[i], b = (unsigned char)t[i + 1];
    if ((b & 0xC0) != 0x80)
        return 0;
    unsigned cp = ((unsigned)(a & 0x1F) << 6) | (b & 0x3F);
    if (a == 0xC3)
        return (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ? 2 : 0;
    if (a == 0xC4 || a == 0xC5) {
        if ((cp <= 0x137 && cp % 2 == 0) || (cp >= 0x139 && cp <= 0x148 && cp % 2 == 1) ||
            (cp >= 0x14A && cp <= 0x177 && cp % 2 == 0) || cp == 0x178 || cp == 0x179 ||
            cp == 0x17B || cp == 0x17D)
            return 2;
    }
    return 0;
}

/* Bytes of a letter at t[i] that is not an uppercase one: ASCII lowercase, or a non-ASCII
 * letter-ish UTF-8 sequence (any valid multibyte sequence that is not uppercase Latin). */
static size_t lower_letter(const char *t, size_t len, size_t i)
{
    unsigned char c = (unsigned char)t[i];
    if (is_lower_a(c))
        return 1;
    if (c < 0xC2 || c > 0xF4 || utf8_upper(t, len, i))
        return 0;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (i + n > len)
        return 0;
    for (size_t k = 1; k < n; k++)
        if (((unsigned char)t[i + k] & 0xC0) != 0x80)
            return 0;
    if (c == 0xE2)
        return 0; /* punctuation block (quotes, dashes) */
    return n;
}

/* Length of a capitalised word at t[i] ("Smith", "Müller", "O'Brien", "Smith-Jones",
 * "McDonald"), or 0. */
static size_t cap_word(const char *t, size_t len, size_t i)
{
    if (i >= len)
        return 0;
    size_t p = i, u;
    if (is_upper_a((unsigned char)t[p]))
        p++;
    else if ((u = utf8_upper(t, len, p)) != 0)
        p += u;
    else
        return 0;
    if (p + 1 < len && t[p] == '\'' && is_upper_a((unsigned char)t[p + 1]))
        p += 2; /* O'Brien, D'Angelo */
    size_t l = p < len ? lower_letter(t, len, p) : 0;
    if (l == 0)
        return 0;
    p += l;
    while (p < len && p - i < WORD_MAX) {
        unsigned char c = (unsigned char)t[p];
        if ((l = lower_letter(t, len, p)) != 0) {
            p += l;
        } else if (is_upper_a(c) || (u = utf8_upper(t, len, p)) != 0) {
            p += is_upper_a(c) ? 1 : u; /* McDonald, DiCaprio */
        } else if ((c == '-' || c == '\'') && p + 1 < len &&
                   (is_upper_a((unsigned char)t[p + 1]) || lower_letter(t, len, p + 1))) {
            p++;
        } else {
            break;
        }
    }
    if (p - i >= WORD_MAX)
        return 0;
    if (p - i > 3 && t[p - 2] == '\'' && t[p - 1] == 's')
        p -= 2; /* possessive: "Pavlov's" */
    if (p < len && (((unsigned char)t[p] >= 0x80) || (t[p] >= '0' && t[p] <= '9') || t[p] == '_'))
        return 0;
    return p - i;
}

static int cmp_word(const void *key, const void *elem)
{
    const char *k = key, *e = *(const char *const *)elem;
    return strcmp(k, e);
}

static bool in_list(const char *w, size_t n, const char *const *list, size_t count)
{
    char buf[WORD_MAX + 1];
    if (n == 0 || n > WORD_MAX)
        return false;
    memcpy(buf, w, n);
    buf[n] = 0;
    return bsearch(buf, list, count, sizeof(list[0]), cmp_word) != NULL;
}

static bool in_small_list(const char *w, size_t n, const char *const *list, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (list[k][0] == w[0] && strlen(list[k]) == n && memcmp(list[k], w, n) == 0)
            return true;
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

bool pii__is_given_name(const char *word, size_t n)
{
    return in_list(word, n, pii__given_names, pii__given_names_count);
}

static bool surname_ok(const char *t, size_t i, size_t n)
{
    return n >= 2 && !in_small_list(t + i, n, not_surnames, COUNT(not_surnames)) &&
           !in_small_list(t + i, n, honorifics, COUNT(honorifics));
}

/* Whether t[i] starts a sentence: only spaces, quotes or brackets since the text start or
 * the last '.', '!', '?', ':' or newline. */
static bool sentence_start(const char *t, size_t i)
{
    while (i > 0) {
        unsigned char c = (unsigned char)t[i - 1];
        if (c == ' ' || c == '\t' || c == '"' || c == '(' || c == '\'' || c == '*' || c == '-')
            i--;
        else
            return c == '.' || c == '!' || c == '?' || c == ':' || c == '\n' || c == '\r' ||
                   c == '>' || c == '#';
    }
    return true;
}

/* Whether only blanks separate t[i] from the start of its line. */
static bool line_start(const char *t, size_t i)
{
    while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t'))
        i--;
    return i == 0 || t[i - 1] == '\n';
}

/* Whether the word before t[i] makes a month reading likely ("in May", "by April"). */
static bool month_context(const char *t, size_t i)
{
    static const char *const before[] = {"in", "on", "by", "until", "since", "from", "of",
                                         "last", "next", "this", "early", "late", "mid",
                                         "during", "before", "after", "till", "through"};
    if (i < 2 || t[i - 1] != ' ')
        return false;
    size_t e = i - 1, b = e;
    while (b > 0 && is_lower_a((unsigned char)t[b - 1]) && e - b < 8)
        b--;
    if (b > 0 && t[b - 1] != ' ' && t[b - 1] != '\n' && t[b - 1] != '(')
        return false;
    return in_small_list(t + b, e - b, before, COUNT(before));
}

/* After a name word ending at p: up to two more surname words (with particles or a middle
 * initial "F." in between); returns the end of the name. */
static size_t surnames(const char *t, size_t len, size_t p, int want_min)
{
    size_t end = p;
    int got = 0;
    bool initial_ok = true;
    while (got < 2 && end < len && t[end] == ' ') {
        size_t q = end + 1, n;
        /* middle initial "F." once, before the first surname */
        if (got == 0 && initial_ok && q + 2 < len && is_upper_a((unsigned char)t[q]) &&
            t[q + 1] == '.' && t[q + 2] == ' ') {
            initial_ok = false;
            size_t r = q + 3, m = cap_word(t, len, r);
            if (surname_ok(t, r, m)) {
                end = r + m;
                got++;
                continue;
            }
            break;
        }
        /* particles: up to two lowercase words */
        size_t r = q;
        for (int k = 0; k < 2; k++) {
            size_t w = 0;
            while (r + w < len && is_lower_a((unsigned char)t[r + w]) && w < 6)
                w++;
            if (w && r + w < len && t[r + w] == ' ' && in_small_list(t + r, w, particles, COUNT(particles)))
                r += w + 1;
            else
                break;
        }
        n = cap_word(t, len, r);
        if (!surname_ok(t, r, n))
            break;
        end = r + n;
        got++;
    }
    return got >= want_min ? end : 0;
}

size_t pii__person_at(const char *t, size_t len, size_t i, size_t *start)
{
    size_t n = cap_word(t, len, i);
    /* honorific + name */
    size_t h = 0;
    if (n && in_small_list(t + i, n, honorifics, COUNT(honorifics)))
        h = n;
    else if (i + 1 < len && t[i] == 'M' && t[i + 1] == '.' && !line_start(t, i))
        h = 1; /* "M. Dupont", but not an enumeration "M. Delete ..." */
    if (h) {
        size_t p = i + h;
        if (p < len && t[p] == '.')
            p++;
        else if (h == 1)
            return 0;
        if (p >= len || t[p] != ' ')
            return 0;
        p++;
        /* a second honorific: "Prof. Dr. Meier" */
        for (size_t k = 0; k < COUNT(honorifics); k++) {
            size_t hl = strlen(honorifics[k]);
            if (p + hl + 1 < len && memcmp(t + p, honorifics[k], hl) == 0 &&
                (t[p + hl] == '.' || t[p + hl] == ' ')) {
                p += hl + (t[p + hl] == '.');
                if (p < len && t[p] == ' ')
                    p++;
                break;
            }
        }
        size_t m = cap_word(t, len, p);
        if (!surname_ok(t, p, m))
            return 0;
        size_t end = surnames(t, len, p + m, 0);
        *start = p;
        return end - p;
    }
    if (n == 0)
        return 0;
    /* given name (or the first part of a hyphenated one) + surnames */
    size_t g = n;
    if (!pii__is_given_name(t + i, n)) {
        /* Jean-Luc, Anne-Marie; not "Per-head" */
        const char *dash = memchr(t + i, '-', n);
        if (!dash || !is_upper_a((unsigned char)dash[1]) ||
            !pii__is_given_name(t + i, (size_t)(dash - (t + i))))
            return 0;
    }
    bool ambiguous = in_small_list(t + i, g, ambiguous_names, COUNT(ambiguous_names));
    if (ambiguous && (sentence_start(t, i) || month_context(t, i)))
        return 0;
    size_t end = surnames(t, len, i + g, 1);
    if (end == 0)
        return 0;
    if (ambiguous) {
        /* "Will April", "Mark Grace": two given names in a row after an ambiguous one are
         * more likely capitalised words than a person */
        size_t s2 = i + g + 1, w2 = cap_word(t, len, s2);
        if (w2 && pii__is_given_name(t + s2, w2))
            return 0;
    }
    *start = i;
    return end - i;
}
